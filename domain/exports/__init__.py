"""Getting data back out: one activity as GPX, TCX or FIT (exports.activity) and the whole account as a zip
(exports.account)."""
