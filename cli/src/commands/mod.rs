//! One module per subcommand.

pub mod completions;
pub mod down;
pub mod images;
pub mod logs;
pub mod ps;
pub mod report;
pub mod run;
pub mod up;
pub mod validate;
