from tests.builders import trustoo_body, trustoo_headers, trustoo_review


def test_trustoo_review_created_is_stored_and_acknowledged(client, rt):
    body = trustoo_body(trustoo_review())
    response = client.post("/webhooks/trustoo/review-created", data=body, headers=trustoo_headers(body))
    assert response.status_code == 200
    assert response.data == b'{"code":0,"message":"success"}'
