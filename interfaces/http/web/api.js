// The API client: JSON requests to this origin with the user's bearer token, which it
// keeps in sessionStorage (with the user's name) for as long as the tab lives.

export const LOGIN = "/auth/login";
export const REGISTER = "/auth/register";
const TOKEN_KEY = "cps.token";
const USER_KEY = "cps.username";

export const token = () => sessionStorage.getItem(TOKEN_KEY);
export const username = () => sessionStorage.getItem(USER_KEY);

export function keepCredentials(issued, name) {
  sessionStorage.setItem(TOKEN_KEY, issued);
  sessionStorage.setItem(USER_KEY, name);
}

export function forgetCredentials() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
}

export class ApiError extends Error {
  constructor(message, status, sentToken) {
    super(message);
    this.status = status;
    this.sentToken = sentToken;
  }
}

export async function api(method, path, body) {
  const bearer = token();
  const headers = { Accept: "application/json" };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (bearer && path !== LOGIN && path !== REGISTER) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError("Cannot reach the server: check your connection and try again.", 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message =
      data && typeof data.error === "string"
        ? data.error
        : `The server answered ${response.status} ${response.statusText}`.trim();
    throw new ApiError(message, response.status, Boolean(headers.Authorization));
  }
  if (data === null) throw new ApiError("The server's answer is not JSON.", response.status);
  return data;
}

export const cryptoPath = (symbol, rest = "") => `/crypto/${encodeURIComponent(symbol)}${rest}`;
// 404: nobody tracks it; 400: it cannot be a ticker at all (from an edited address).
export const isNotTracked = (error) =>
  error instanceof ApiError && (error.status === 404 || error.status === 400);
