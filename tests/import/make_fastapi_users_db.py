"""A fastapi-users application's database, made by fastapi-users itself.

Usage: python make_fastapi_users_db.py DATABASE_PATH JWT_SECRET

Creates the SQLite database of a minimal fastapi-users app (the SQLAlchemy adapter with
aiosqlite, as fastapi-users' documentation sets it up), registers users through its
UserManager (passwords hashed by pwdlib: argon2 by default, bcrypt for one user, as older
installs hashed), and signs an access token for the first user with the app's JWTStrategy.
Prints JSON: {"users": [{"id", "email", "password", "is_active", "is_superuser",
"is_verified", "hash_prefix"}], "token": {"user_id", "value"}}.
"""

import asyncio
import json
import sys
import uuid

from fastapi_users import BaseUserManager, UUIDIDMixin, schemas
from fastapi_users.authentication import JWTStrategy
from fastapi_users.password import PasswordHelper
from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from pwdlib import PasswordHash
from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = "reset-secret"
    verification_token_secret = "verification-secret"


# (email, password, is_active, is_superuser, is_verified, hashed with bcrypt)
USERS = [
    ("alice@example.com", "correct horse battery staple", True, False, False, False),
    ("admin@example.com", "admin passphrase of old", True, True, True, False),
    ("bcrypt@example.com", "hashed the old way", True, False, True, True),
    # A password typed with a combining accent: fastapi-users hashes it as typed.
    ("accent@example.com", "cafe\u0301 au lait, s'il vous pla\u00eet", True, False, False, False),
    ("gone@example.com", "deactivated long ago", False, False, False, False),
]


async def main(path: str, secret: str) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    made = []
    async with sessions() as session:
        database = SQLAlchemyUserDatabase(session, User)
        argon2 = UserManager(database)
        bcrypt = UserManager(database, PasswordHelper(PasswordHash((BcryptHasher(),))))
        for email, password, active, superuser, verified, old_way in USERS:
            manager = bcrypt if old_way else argon2
            user = await manager.create(
                UserCreate(
                    email=email,
                    password=password,
                    is_active=active,
                    is_superuser=superuser,
                    is_verified=verified,
                ),
                safe=False,
            )
            made.append(
                {
                    "id": str(user.id),
                    "email": user.email,
                    "password": password,
                    "is_active": user.is_active,
                    "is_superuser": user.is_superuser,
                    "is_verified": user.is_verified,
                    "hash_prefix": user.hashed_password.split("$")[1],
                }
            )
        strategy = JWTStrategy(secret=secret, lifetime_seconds=3600)
        first = await argon2.get(uuid.UUID(made[0]["id"]))
        token = await strategy.write_token(first)
        # The app itself accepts it.
        assert (await strategy.read_token(token, argon2)).id == first.id
    await engine.dispose()
    print(json.dumps({"users": made, "token": {"user_id": made[0]["id"], "value": token}}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
