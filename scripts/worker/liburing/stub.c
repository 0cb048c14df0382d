/* Intentionally empty: the real liburing.a is linked through the `uring` dependency. */
