"""`dlk serve`: the vector API of the second seed, search over the lake's sources, files by id, and a search page."""
