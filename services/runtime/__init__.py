"""Local runtime: fetching and running the Kafka broker, supervising every process."""
