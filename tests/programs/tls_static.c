/* OpenSSL linked in statically, as some Node.js builds have it: doctor says
 * its HTTPS is not seen. */
#include <openssl/ssl.h>

int main(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	int r = SSL_write(ssl, "", 0);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return r > 0;
}
