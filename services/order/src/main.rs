//! `order-service`: the service until SIGTERM or Ctrl-C (`order-service --help`).

fn main() -> anyhow::Result<()> {
    order_service::DEFINITION.main()
}
