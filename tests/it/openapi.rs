//! `GET /openapi.json`: an OpenAPI 3 document naming every route the server answers.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::http_ingest::TestServer;
use crate::pg::TestDb;

/// Every route of the contract implemented so far.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/usage"),
    ("post", "/v1/traces"),
    ("get", "/v1/spend"),
    ("get", "/v1/unpriced"),
    ("get", "/v1/savings"),
    ("get", "/v1/whatif"),
    ("get", "/v1/whatif/cheaper"),
    ("get", "/v1/prices"),
    ("get", "/metrics"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
    ("post", "/v1/budgets"),
    ("get", "/v1/budgets"),
    ("get", "/v1/budgets/{id}"),
    ("put", "/v1/budgets/{id}"),
    ("delete", "/v1/budgets/{id}"),
    ("get", "/v1/budgets/{id}/status"),
    ("get", "/v1/budgets/check"),
    ("get", "/v1/alerts"),
];

#[tokio::test]
async fn the_document_lists_every_route_and_every_listed_route_is_served() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let response = server
        .client
        .get(format!("{}/openapi.json", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(document["info"]["title"], "llm-meter");

    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, expected);

    // Each documented operation is served: neither 404 nor 405.
    for (method, path) in &documented {
        let url = format!("{}{}", server.base, path.replace("{id}", "bud_unknown"));
        let request = match method.as_str() {
            "get" => server.client.get(url),
            "post" => server.client.post(url).body("{}"),
            "put" => server.client.put(url).body("{}"),
            "delete" => server.client.delete(url),
            other => panic!("unexpected method {other}"),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        // A 404 must be the API's own answer about a missing budget, not an unknown route.
        let body = response.text().await.unwrap();
        assert!(
            status != 405 && (status != 404 || body.contains("no budget")),
            "{method} {path}: {status} {body}"
        );
    }
    // Operations document their answers, and the error shape is a named schema.
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());
    assert!(
        document["paths"]["/v1/spend"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "group_by")
    );
}

/// Routes are registered with `routes!` (documented by construction), never a bare
/// `.route(…)` that the document would miss.
#[test]
fn no_route_bypasses_the_document() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(".route("),
            "{} registers a route outside the OpenAPI document",
            path.display()
        );
    }
}
