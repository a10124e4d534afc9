// musl's allocator returns freed pages to the kernel at once; a start allocates and
// frees in small bursts, so dlmalloc (which keeps them) saves dozens of syscalls.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> std::process::ExitCode {
    linstor_provision_disk::cli::main()
}
