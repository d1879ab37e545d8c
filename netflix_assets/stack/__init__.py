"""The local stack: Kafka (KRaft), Redis and PostgreSQL on loopback, state under one folder."""
