"""The use cases the routes call, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from sanic import Request

from application.add_crypto import AddCrypto
from application.delete_crypto import DeleteCrypto
from application.get_crypto import GetCrypto
from application.list_cryptos import ListCryptos
from application.login_user import LoginUser
from application.poll_prices import PollPrices
from application.price_history import PriceHistory
from application.price_stats import PriceStatistics
from application.refresh_crypto import RefreshCrypto
from application.register_user import RegisterUser
from domain.ports import TokenService


@dataclass(frozen=True, slots=True)
class Services:
    register_user: RegisterUser
    login_user: LoginUser
    list_cryptos: ListCryptos
    add_crypto: AddCrypto
    get_crypto: GetCrypto
    refresh_crypto: RefreshCrypto
    price_history: PriceHistory
    price_stats: PriceStatistics
    delete_crypto: DeleteCrypto
    poll_prices: PollPrices
    tokens: TokenService


def services(request: Request) -> Services:
    found: Services = request.app.ctx.services
    return found
