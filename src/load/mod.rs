//! Load scenarios (in progress).
