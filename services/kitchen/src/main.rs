//! `kitchen-service`: the service until SIGTERM or Ctrl-C (`kitchen-service --help`).

fn main() -> anyhow::Result<()> {
    kitchen_service::DEFINITION.main()
}
