//! The OpenAPI document served at `/api/openapi.json` lists routes that exist: every path and
//! method in it is routed (asked without credentials it answers anything but "not found" and
//! "method not allowed", which is what a path the router does not know gets).

use serde_json::Value;

use crate::summary::http;
use crate::support::*;

#[tokio::test]
async fn every_route_the_openapi_document_lists_exists() {
    let server = TestServer::start().await;
    let (status, body) = http(server.addr, "GET", "/api/openapi.json", "", None).await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 30);
    // A path the router does not know, for comparison.
    let (unknown, _) = http(server.addr, "GET", "/api/meetings/x/nothing-here", "", None).await;
    assert_eq!(unknown, 404);
    for (path, item) in paths {
        let concrete = path
            .split('/')
            .map(|seg| match seg {
                "{n}" | "{v}" | "{r}" => "1",
                s if s.starts_with('{') => "x",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let (status, _) = http(server.addr, &method, &concrete, "", None).await;
            assert!(
                status != 404 && status != 405,
                "{method} {path} is documented but answers {status}"
            );
        }
    }
    server.stop().await;
}
