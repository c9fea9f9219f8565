//! Go's text/template, as far as Helm charts use it: the syntax (actions, trim markers,
//! comments, pipelines, variables, `if`/`else if`/`with`/`range`/`define`/`template`/`block`,
//! `break`/`continue`) and the functions in [`funcs`].

pub mod exec;
pub mod funcs;
pub mod lex;
pub mod parse;

pub use exec::Engine;
pub use parse::Node;

#[cfg(test)]
mod tests;
