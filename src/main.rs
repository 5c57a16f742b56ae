//! The `incentives` binary: everything lives in the library; see `cli::main`.

fn main() -> std::process::ExitCode {
    incentives::cli::main()
}
