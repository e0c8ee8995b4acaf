"""PostgreSQL through Tortoise ORM: models, repositories, migrations, embedded server."""
