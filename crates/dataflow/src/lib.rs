//! checkflow-dataflow: the Data Flow task. Rows travel between components as Arrow record
//! batches (`datafusion::arrow`, the one Arrow version the workspace builds).
//!
//! - [`vexpr`]: SSIS expressions evaluated a batch at a time, for Derived Column and
//!   Conditional Split.

pub mod vexpr;
