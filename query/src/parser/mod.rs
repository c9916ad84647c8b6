//! PromQL parser (nom). Filled in by the parser work.
