"""Password hashing (bcrypt) and bearer tokens (JWT)."""

from infrastructure.security.passwords import BcryptPasswordHasher
from infrastructure.security.tokens import JwtTokenService, load_or_create_secret

__all__ = ["BcryptPasswordHasher", "JwtTokenService", "load_or_create_secret"]
