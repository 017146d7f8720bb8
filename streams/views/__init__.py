"""Read side: what people look at, straight from the warehouse."""
