//! The sans-I/O protocol state of one client.
