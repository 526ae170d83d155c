/*
 * Texts the classifier must not report, shared by the classifier's tests
 * (test_classify.c) and the in-kernel matcher's (test_kmatch.c). The PEM
 * block without a body is separate: the classifier wants a key body, the
 * kernel blocks the BEGIN line alone.
 */
#ifndef LW_TEST_HARD_NEGATIVES_H
#define LW_TEST_HARD_NEGATIVES_H

#define LW_HARD_NEGATIVES_HEAD                                                                     \
	"request id 123e4567-e89b-12d3-a456-426614174000 and "                                     \
	"550E8400-E29B-41D4-A716-446655440000\n"                                                   \
	"commit 3f786850e387550fdab836ed7e6dc881de23001b merged\n"                                 \
	"sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"                \
	"md5 d41d8cd98f00b204e9800998ecf8427e and the sha512 prefix "                              \
	"cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\n"                       \
	"ts 1714567890123, epoch 1714567890, at 2024-05-01T12:30:00Z, 01/05/2024, "                \
	"12.05.2024, 2024-05-01 12:30:00.123456\n"                                                 \
	"version 10.2.3, 1.22.4-beta, build 2024.05.01.1234, IP 192.168.100.200, "                 \
	"10.0.0.12 and 2001:db8::ff00:42:8329\n"                                                   \
	"price $1,299.99, EUR 45.50, 1.234.567,89, qty 12 x 3\n"                                   \
	"placeholders: sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx, YOUR_API_KEY, "        \
	"AKIAIOSFODNN7EXAMPLE, sk-ant-...redacted, "                                               \
	"sk-proj-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX, "                                       \
	"ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx, xoxb-your-token-here, "                         \
	"sk_live_xxxxxxxxxxxxxxxxxxxxxxxx, AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\n"                \
	"config: api_key = \"your-api-key-here\", password: \"********\", "                        \
	"password=changeme123, secret: ${SECRET}, token: <token>, apiKey: process.env.KEY, "       \
	"password_hash: sha256, passwords are hashed\n"                                            \
	"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"                       \
	"IBAN DE89 3704 0044 0532 0130 01 (typo) and GB82WEST12345698765433\n"                     \
	"SSNs 000-12-3456, 666-12-3456, 912-34-5678, 536-00-1234, 078-05-1120, "                   \
	"123-45-6789\n"                                                                            \
	"emails jane@example.com, ops@mail.example.org, logo@2x.png, user@localhost\n"             \
	"product ABC-1234567-X, ISBN 978-3-16-148410-0, part 12-3456-7890-12\n"                    \
	"blob "                                                                                    \
	"aGVsbG8gd29ybGQgdGhpcyBpcyBhIGJhc2U2NCBibG9iIG9mIHNvbWUgbGVuZ3RoIDEyMzQ1Njc4OTA=\n"       \
	"token eyJub3RqdWxzb24.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl\n"             \
	"db postgres://user:password@localhost:5432/db, "                                          \
	"mysql://root:${DB_PASS}@db:3306/app, "                                                    \
	"redis://:<password>@cache:6379, amqp://guest:guest@rabbit:5672/\n"                        \
	"Authorization: Bearer YOUR_TOKEN_HERE, Bearer <token>\n"                                  \
	"phone: 2024-05-01, call v1.2.3.4, mobile app 3.14.159, tel 12\n"                          \
	"ssn field is empty; social security number: 000-00-0000\n"                                \
	"hex 0x7fffffffffffffff, 0xdeadbeefcafebabe, -----BEGIN PUBLIC KEY-----\n"

#define LW_HARD_NEGATIVES_PEM "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n"

#define LW_HARD_NEGATIVES_TAIL "keys look like sk-proj-<your key> or ghp_<36 chars>\n"

#endif
