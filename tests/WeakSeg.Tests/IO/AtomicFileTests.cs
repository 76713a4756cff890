using WeakSeg.IO;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.IO;

public class AtomicFileTests
{
    [Fact]
    public void Replaces_the_file_and_leaves_no_temporary()
    {
        using var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir.Path, "sub", "a.txt");
        AtomicFile.WriteAllText(path, "first");
        AtomicFile.WriteAllLines(path, new[] { "x", "y" });
        Assert.Equal("x\ny\n", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public void A_failed_write_keeps_the_old_file_intact()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("model.bin");
        AtomicFile.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[] { 9, 9 });
            throw new InvalidOperationException("disk full");
        }));
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Missing_folder_is_an_error_when_not_created()
    {
        using var dir = TestPaths.NewTempDir();
        Assert.Throws<DirectoryNotFoundException>(() => AtomicFile.WriteAllText(Path.Combine(dir.Path, "nope", "a.txt"), "x", createDirectory: false));
    }
}
