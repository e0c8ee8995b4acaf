// The web UI of the Crypto Price Server: the entry module. It uses the JSON API only,
// with the bearer token kept in sessionStorage; data reaches the page through
// textContent and DOM nodes, never as HTML. No build step: the browser loads these
// ES modules as they are, each owning its state behind a few exported functions.
//
//   api.js          the API client and the stored token
//   currency.js     the quote currency chosen (GET /currencies), asked for and shown
//   stream.js       the live stream (GET /crypto as text/event-stream) and its reconnects
//   session.js      the router (hash addresses), logging in and out, feeding the views
//   addresses.js    the views' addresses: #/login, #/cryptos, #/cryptos/<symbol>/<tab>
//   list-view.js    the tracked cryptos
//   detail-view.js  one crypto's history and statistics
//   chart.js        the history chart
//   messages.js     messages next to a control, or in the toast
//   format.js, dom.js  formatting numbers and times, building nodes
import { start } from "./session.js";

start();
