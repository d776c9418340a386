//! Load scenarios (in progress).

pub mod checker;
pub mod process;
pub mod rangeset;
pub mod recorder;
pub mod report;
pub mod stamp;
pub mod track;
