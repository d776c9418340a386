//! Load scenarios (in progress).

pub mod checker;
pub mod rangeset;
pub mod stamp;
pub mod track;
