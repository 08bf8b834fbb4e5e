def test_me_provisions_user(client, login):
    headers, user_id = login("ann")
    resp = client.get("/api/v1/me", headers=headers)
    assert resp.status_code == 200
    assert resp.json["id"] == user_id
    assert resp.json["email"] == "ann@example.com"
