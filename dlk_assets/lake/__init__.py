"""Storage: tables and files behind one interface each, with local and (later) Deep Lake PG backends."""
