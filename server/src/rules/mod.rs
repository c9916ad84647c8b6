//! Recording and alerting rules, evaluated by the meta leader, with
//! Alertmanager notification.
//!
//! Modules: [`model`] (rule files: YAML, loading, validation), [`template`]
//! (Go-template expansion of labels and annotations), [`alert`] (the alert
//! lifecycle as pure code), [`group`] (one evaluation cycle of a group),
//! [`manager`] (group tasks on the meta leader, replicated alert state, the
//! rules API), [`notifier`] (delivery to Alertmanager) and [`unittest`]
//! (`silverback rules test`, promtool's rule unit test format).

pub mod alert;
pub mod group;
pub mod manager;
pub mod model;
pub mod notifier;
pub mod template;
pub mod unittest;

/// Errors of the rules subsystem.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum RulesError {
    /// A rule file is invalid; `line` is 0 when unknown.
    #[error("{file}:{line}: {msg}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong (names group and rule).
        msg: String,
    },
    /// A file or glob cannot be read.
    #[error("cannot read rule file {path}: {msg}")]
    Io {
        /// The path or pattern.
        path: String,
        /// The cause.
        msg: String,
    },
}
