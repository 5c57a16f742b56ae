//! The `incentives` binary: everything lives in the library; see `cli::main`.

/// mimalloc instead of the system allocator: the rules and reports make and free many small
/// strings and vectors on two threads at once (see `incentives::allocator`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    incentives::cli::main()
}
