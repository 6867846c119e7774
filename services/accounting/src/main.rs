//! `accounting-service`: the service until SIGTERM or Ctrl-C (`accounting-service --help`).

fn main() -> anyhow::Result<()> {
    accounting_service::DEFINITION.main()
}
