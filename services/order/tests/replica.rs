//! The order service's replica of restaurant menus on a real database: an older menu never
//! replaces a newer one, whatever order the events come in (the kitchen's replica has the same
//! rule, `service_kit::replica`).

use anyhow::Result;
use contracts::restaurant::events::{
    Event, MenuRevised, RestaurantCreated, menu_revised, restaurant_created,
};
use test_support::TestDatabase;
use uuid::Uuid;

async fn menu(database: &TestDatabase, restaurant: Uuid) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT item_id, price_minor FROM menu_items WHERE restaurant_id = $1 ORDER BY item_id",
    )
    .bind(restaurant)
    .fetch_all(database.pool())
    .await?)
}

fn created(restaurant: Uuid, at: i64, item: &str, price: i64) -> Event {
    Event::RestaurantCreated(RestaurantCreated {
        restaurant_id: restaurant,
        name: "Ajanta".into(),
        address: restaurant_created::Address {
            street1: "1 Main St".into(),
            street2: None,
            city: "Oakland".into(),
            state: "CA".into(),
            zip: "94611".into(),
        },
        menu_items: vec![restaurant_created::MenuItem {
            id: item.into(),
            name: item.into(),
            price: restaurant_created::Money {
                amount_minor: price,
                currency: "USD".into(),
            },
        }],
        created_at: at,
    })
}

fn revised(restaurant: Uuid, at: i64, item: &str, price: i64) -> Event {
    Event::MenuRevised(MenuRevised {
        restaurant_id: restaurant,
        menu_items: vec![menu_revised::MenuItem {
            id: item.into(),
            name: item.into(),
            price: menu_revised::Money {
                amount_minor: price,
                currency: "USD".into(),
            },
        }],
        revised_at: at,
    })
}

#[tokio::test]
async fn an_older_menu_never_replaces_a_newer_one() -> Result<()> {
    let database = TestDatabase::create().await?;
    sqlx::migrate!("./migrations").run(database.pool()).await?;
    let restaurant = Uuid::new_v4();
    let apply = |event: Event| async {
        let mut tx = database.pool().begin().await?;
        order_service::replica::apply(&mut tx, event).await?;
        tx.commit().await?;
        anyhow::Ok(())
    };
    // The revision (t=2000) arrives before the creation (t=1000), then again, then an older one.
    apply(revised(restaurant, 2_000, "naan", 399)).await?;
    apply(created(restaurant, 1_000, "samosa", 450)).await?;
    assert_eq!(
        menu(&database, restaurant).await?,
        [("naan".to_owned(), 399)]
    );
    apply(revised(restaurant, 2_000, "naan", 399)).await?;
    apply(revised(restaurant, 1_500, "dosa", 700)).await?;
    assert_eq!(
        menu(&database, restaurant).await?,
        [("naan".to_owned(), 399)]
    );
    // A newer one does.
    apply(revised(restaurant, 3_000, "dosa", 700)).await?;
    assert_eq!(
        menu(&database, restaurant).await?,
        [("dosa".to_owned(), 700)]
    );
    // The creation still named the restaurant.
    let name: String = sqlx::query_scalar("SELECT name FROM restaurants WHERE id = $1")
        .bind(restaurant)
        .fetch_one(database.pool())
        .await?;
    assert_eq!(name, "Ajanta");
    Ok(())
}
