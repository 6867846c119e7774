//! `restaurant-service`: the service until SIGTERM or Ctrl-C (`restaurant-service --help`).

fn main() -> anyhow::Result<()> {
    restaurant_service::DEFINITION.main()
}
