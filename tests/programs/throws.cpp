// A C++ program whose exceptions pass through instrumented frames: every
// frame between throw and catch is left without a normal return.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace shop {

struct Cart {
	int items = 0;
};

__attribute__((noinline)) void check_stock(int depth)
{
	if (depth == 0)
		throw std::runtime_error("out of stock");
	check_stock(depth - 1);
}

__attribute__((noinline)) int checkout(Cart &cart)
{
	try {
		check_stock(3);
	} catch (const std::exception &) {
		return ++cart.items;
	}
	return 0;
}

} // namespace shop

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
	shop::Cart cart;
	int caught = 0;
	for (int i = 0; i < rounds; i++)
		caught += shop::checkout(cart) > 0;
	std::printf("caught %d\n", caught);
	return caught == rounds ? 0 : 1;
}
