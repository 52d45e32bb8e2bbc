//! The test cluster starts and hands out separate databases.

#[tokio::test]
async fn each_test_gets_a_database_of_its_own() {
    let a = metr_testkit::fresh_database().await;
    let b = metr_testkit::fresh_database().await;
    assert_ne!(a.name, b.name);
    let (client, conn) = tokio_postgres::connect(&a.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), a.name);
}
