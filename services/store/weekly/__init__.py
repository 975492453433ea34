"""The task force's weekly report: assembled from ClickHouse, rendered in five formats."""
