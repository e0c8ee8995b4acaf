// The views' addresses (hash routes): #/login, #/cryptos, #/cryptos/<symbol>/history
// and #/cryptos/<symbol>/stats. Pure functions, shared by the router and the views' links.

export const LIST = "#/cryptos";
export const LOGIN_VIEW = "#/login";
export const detailHash = (symbol, tab) => `#/cryptos/${encodeURIComponent(symbol)}/${tab}`;

// The view an address names, and its canonical address when it is not that one already.
export function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  let decoded;
  try {
    decoded = parts.map(decodeURIComponent);
  } catch {
    return { name: "list", canonical: LIST };
  }
  const [first, symbol, tab] = decoded;
  if (first === "login" && parts.length === 1) return { name: "login" };
  if (first === "cryptos" && symbol && (tab === "history" || tab === "stats") && !parts[3]) {
    const upper = symbol.toUpperCase(); // tickers are case-insensitive: one address each
    return { name: tab, symbol: upper, canonical: detailHash(upper, tab) };
  }
  if (first === "cryptos" && symbol && !tab) {
    const upper = symbol.toUpperCase();
    return { name: "history", symbol: upper, canonical: detailHash(upper, "history") };
  }
  return { name: "list", canonical: first === "cryptos" && parts.length === 1 ? null : LIST };
}
