fn main() {
    println!("silverback");
}
