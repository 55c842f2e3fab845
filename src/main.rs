//! The `rarts` command line; its commands live in `src/cli/`.

mod cli;

#[global_allocator]
static ALLOC: rarts::hugealloc::HugeAlloc = rarts::hugealloc::HugeAlloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
