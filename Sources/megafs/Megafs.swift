import ArgumentParser
@main struct Megafs: ParsableCommand {}
