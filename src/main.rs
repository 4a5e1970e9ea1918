//! The `checkflow` binary: a thin shell over `checkflow_cli::main`.

fn main() {
    std::process::exit(checkflow_cli::main());
}
