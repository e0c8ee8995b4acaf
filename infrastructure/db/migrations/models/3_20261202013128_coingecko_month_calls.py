from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "coingecko_month_calls" (
    "month" DATE NOT NULL PRIMARY KEY,
    "calls" INT NOT NULL
);
COMMENT ON TABLE "coingecko_month_calls" IS 'CoinGecko calls of a calendar month (UTC), for the whole deployment.';"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "coingecko_month_calls";"""


MODELS_STATE = (
    "eJztmltz2jgUgP+Kxk9kJpuhJITsvoFDWrYJZIDs7nS7owhbGE9syZXlEiab/76SsPHdMb"
    "NpGyhPMUfn6PLZOhcpT5pLTez4JzpbeZyOsUGZqf0GnjSCXCweCtuPgYY8L26VAo5mjjIw"
    "lKaSoZnPGTK4EM+R42MhMrFvMNvjNiVCSgLHkUJqCEWbWLEoIPaXAENOLcwXmImGv/8RYp"
    "uY+BH70U/vAc5t7KRnbKsJKjnkK0/JBoRfKUU52gwa1AlcEit7K76gZKNtEy6lFiaYIY5l"
    "95wFcvpyduFCoxWtZxqrrKeYsDHxHAUOTyx3BmOZBuFwNIWT/hRCbQtABiUSrpiqr1ZvyS"
    "n80np31jm7OD0/uxAqapobSed5PXQMZm2o8Ayn2rNqRxytNRTjGKq/cmfUyYPVF4gVk40t"
    "MnTFtLN0I5ZvF6+LHqGDicUXkmmzguUf3bH+oTtutJpHckAqNsB6YwzDlpZqkrhjvAa1CS"
    "z6cMv5JkxeB3AkiAnHm/b7I2636zBut8shy7Y0ZfV3C8SR/oFvPb5GwBgmHHrMNgpAXzkU"
    "lbjhnGUG+Vya7iD0CsaXo7vedR/cjvv6YDIYDeUo7sr/4sSNUiQENlcMxv3udQa4g3wOA8"
    "9UQHK8L4WY2y4uRp61zRA3Q+OT6GG/6E8HN/3JtHtzq7D7EfbutC9bWumXEUob55nNsOkE"
    "/DmYfgDyJ/g0Gqr35lGfW0yNGOtNP2lyTijgFBK6hMhMMonEkSi9txiW4OF6G2zzotOWb+"
    "o1D+mycfQTv2CZw84fEgmXFMyQ8bBEzISplvhLWNg+p2yV/wx6oeHVxzF2kGKZf+FhPn8r"
    "HW2czu/mxo6lYTqogNIWLSOab3JbblaCCLLUkuTYcqQQ2Q0lfKEjx/HLy6ScznFlqSRSOA"
    "sbDxS60g4a0rBW4aTpwvS9NAXKCNA5QPIRExMxoLoDjbupfnQM5pQBUUOB5YI6GJjYc+jK"
    "FcH2RMuwfpVOP5PPZEQwYHQpjJXNMTBoQMTHBQIPzFbg/t4mcybCDwsMHjDhe2YnCQD392"
    "pm/6MCVJ0Vu8liF7kxqPKOO1e0VCUfwuO9UPFtPsaalfRG/+Viegc8zGvU01t492/pt5Ku"
    "vsBlZSJBubdSuTlMRJ9verzzpMXLC8+UwmqXq2mJZ2mBHz0Rg30x3gZEfA70CFNzhmE33I"
    "96Cj9RTXUk1qJ+PG91stSzrZ/lcOnXVuv0tNNqnp5ftM86nfZFc7Mr8k1V26M3eC93SCrV"
    "evkIavuq8lBNblVN8gJ3X11a8CKHf6gcf3xhka4cE86zbjBP2hwCellAz0Iu8E6UYdsiH/"
    "FKgR6IOSFS6JRKLlp2DHNZZSbEDC03MTX9gQkKYu147Zj07kTvXvbXYfj7Z0t3PmblyVKi"
    "tTJXCoTe4Qpsv67A5Dvd9gYhabN312DtOtdg7fJrsHbuGsxDvr8UmwsukF9QwJdzzhkerm"
    "xqXtkcjpX3L/t7IwcPXSzqr0VRGA1bKkMoinUOMXRfYuhXkRaF9xJ1XXvC5ODU6zl1uam2"
    "IByq7yHdd806KYrQKqWr2rL/q0M4JgXx8vfJaFj2vzobk2ygtA0O/gWO7e9iUV0BV8JIxc"
    "iIaeOm+1cWt3496mWDn+yg96NP0Z//A4i+LOg="
)
