"""Password hashing (bcrypt) and bearer tokens (JWT)."""

from infrastructure.security.passwords import BcryptPasswordHasher
from infrastructure.security.token_cache import CachingTokenService
from infrastructure.security.tokens import JwtTokenService, load_or_create_secret

__all__ = [
    "BcryptPasswordHasher",
    "CachingTokenService",
    "JwtTokenService",
    "load_or_create_secret",
]
