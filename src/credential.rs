//! Connection strings, client access URLs and tokens.
