"""A built-in pipeline that needs no account anywhere: moto for AWS, fakesnow for Snowflake,
fakeredis for Redis, and a scripted Aurora catalog. Used by `syncbot console` and by the tests."""
