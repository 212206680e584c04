"""Search requests, the filter language, and their compilation to TQL (and later Deep Lake PG SQL)."""
