using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using WeakSeg.Data;
using WeakSeg.IO;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Reliability;

/// <summary>Inputs that could hang a command or make it allocate without bound are refused, named, and listed by `info`.</summary>
[Collection("Torch")]
public partial class BoundedInputTests
{
    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MakeFifo(string path, uint mode);

    /// <summary>A PNG whose header declares width × height (8-bit, colour type 2 = RGB or 0 = grey) but holds only two rows of data:
    /// a few hundred bytes that a decoder trusting the header would turn into a width × height × 4 byte allocation.</summary>
    static byte[] PngDeclaring(int width, int height, byte colourType)
    {
        int channels = colourType == 2 ? 3 : 1;
        using var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.SmallestSize, leaveOpen: true)) z.Write(new byte[(1 + channels * width) * 2]);
        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = colourType;
        foreach (var (type, data) in new[] { ("IHDR", ihdr), ("IDAT", compressed.ToArray()), ("IEND", Array.Empty<byte>()) })
        {
            var chunk = new byte[8 + data.Length + 4];
            BinaryPrimitives.WriteInt32BigEndian(chunk, data.Length);
            Encoding.ASCII.GetBytes(type).CopyTo(chunk, 4);
            data.CopyTo(chunk, 8);
            BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), LabelPng.Crc32(chunk.AsSpan(4, 4 + data.Length)));
            png.Write(chunk);
        }
        return png.ToArray();
    }

    static string Image(string data, int i) => Path.Combine(data, "JPEGImages", $"train_{i:D6}.jpg");
    static string Mask(string data, int i) => Path.Combine(data, "SegmentationClass", $"train_{i:D6}.png");

    [Fact]
    public void A_header_declaring_20000_squared_pixels_is_refused_before_decoding()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("bomb.jpg");
        File.WriteAllBytes(path, PngDeclaring(20000, 20000, 2));
        Assert.True(new FileInfo(path).Length < 2000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<WeakSegException>(() => ImageCodec.Load(path));
        Assert.Equal($"{path}: image declares 20000x20000 pixels, more than the limit of {InputLimits.MaxImagePixels:N0} (set WEAKSEG_MAX_IMAGE_PIXELS to allow larger images)", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "the refusal must not allocate the declared pixels");
        Assert.Equal(e.Message, Assert.Throws<WeakSegException>(() => ImageCodec.ReadSize(path)).Message);

        var mask = dir.File("bomb.png");
        File.WriteAllBytes(mask, PngDeclaring(50000, 50000, 0));                         // was an OverflowException naming no file
        var m = Assert.Throws<WeakSegException>(() => LabelPng.Read(mask));
        Assert.StartsWith($"{mask}: corrupt or unsupported mask PNG: the header declares 50000x50000 pixels, more than the limit", m.Message);
    }

    [Fact]
    public void Files_over_the_size_limit_are_refused_before_reading()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("big.jpg");
        using (var fs = File.Create(path)) fs.SetLength(InputLimits.MaxInputBytes + 1);  // sparse: no disk used
        var e = Assert.Throws<WeakSegException>(() => ImageCodec.Load(path));
        Assert.Contains("more than the limit of", e.Message);
        Assert.StartsWith(path + ": image file is", e.Message);
    }

    [Fact]
    public async Task Fifo_dangling_link_link_loop_and_device_are_listed_by_info_and_refused_by_train()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        File.Delete(Image(data, 0));
        Assert.Equal(0, MakeFifo(Image(data, 0), Convert.ToUInt32("644", 8)));
        File.Delete(Image(data, 1));
        File.CreateSymbolicLink(Image(data, 1), "/nonexistent/target.jpg");
        File.Delete(Image(data, 2));
        File.CreateSymbolicLink(Image(data, 2), Path.GetFileName(Image(data, 2)));         // a link to itself
        File.Delete(Image(data, 3));
        File.CreateSymbolicLink(Image(data, 3), "/dev/zero");

        // A FIFO used to block forever: the wait fails the test instead of hanging it.
        var (code, _, err) = await Task.Run(() => CliRunner.Run("info", "--data", data, "--split", "train")).WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(1, code);
        Assert.Contains("4 problem(s):", err);
        Assert.True(err.Contains($"{Image(data, 0)}: image file is empty (or not a regular file: a FIFO or a device)"), err);
        Assert.True(err.Contains($"{Image(data, 1)}: image is a dangling symbolic link (its target /nonexistent/target.jpg does not exist)"), err);
        Assert.True(err.Contains($"{Image(data, 2)}: image is a symbolic link that loops"), err);
        Assert.True(err.Contains($"{Image(data, 3)}: image file is empty (or not a regular file: a FIFO or a device)"), err);
        Assert.DoesNotContain("unexpected", err);

        var config = dir.File("tiny.json");
        File.WriteAllText(config, PipelineTestData.TinyOverlay(steps: 2).ToJsonString());
        var train = CliRunner.Run("train", "--method", "mctformer-v2", "--data", data, "--out", dir.File("run"), "--config", config);
        Assert.Equal(1, train.Code);
        Assert.StartsWith($"error: {Image(data, 0)}: image file is empty (or not a regular file", train.Err);
        Assert.False(Directory.Exists(dir.File("run")));
    }

    [Fact]
    public void Split_names_that_leave_the_dataset_root_are_refused_naming_the_split_file()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        Directory.CreateDirectory(dir.File("outside"));
        File.Copy(Image(data, 2), dir.File("outside/img.jpg"));
        // A valid link to an image outside the root is still read (with the target's size, not the link's).
        File.Copy(Image(data, 4), dir.File("outside/linked.jpg"));
        File.Delete(Image(data, 4));
        File.CreateSymbolicLink(Image(data, 4), dir.File("outside/linked.jpg"));
        Assert.Equal((32, 32), (ImageCodec.Load(Image(data, 4)).Width, ImageCodec.Load(Image(data, 4)).Height));
        Assert.Equal(8, VocDataset.Open(data, "train").Samples.Count);
        var split = Path.Combine(data, "ImageSets", "Segmentation", "train.txt");
        File.AppendAllText(split, "../../outside/img\n");
        var e = Assert.Throws<WeakSegException>(() => VocDataset.Open(data, "train"));
        Assert.Equal($"{split}: line 9: image name '../../outside/img' contains a path separator or '..' (names are file names inside JPEGImages)", e.Message);
        var info = CliRunner.Run("info", "--data", data, "--split", "train");
        Assert.Equal(1, info.Code);
        Assert.Contains(split, info.Err);
    }

    [Fact]
    public void An_image_name_with_spaces_is_refused_naming_the_line_and_other_characters_work()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var split = Path.Combine(data, "ImageSets", "Segmentation", "train.txt");
        var labels = Path.Combine(data, "labels.txt");
        void Rename(string from, string to)
        {
            File.Move(Path.Combine(data, "JPEGImages", from + ".jpg"), Path.Combine(data, "JPEGImages", to + ".jpg"));
            File.Move(Path.Combine(data, "SegmentationClass", from + ".png"), Path.Combine(data, "SegmentationClass", to + ".png"));
            foreach (var list in new[] { split, labels })
                File.WriteAllLines(list, File.ReadAllLines(list).Select(l => l == from || l.StartsWith(from + " ", StringComparison.Ordinal) ? to + l[from.Length..] : l));
        }
        int classesOf3 = VocDataset.Open(data, "train").Samples[3].Classes.Length;

        // Lists separate fields by whitespace: "tràin 01 ✓" would be read as the name "tràin". It is refused, naming the line.
        Rename("train_000003", "tràin 01 ✓");
        var e = Assert.Throws<WeakSegException>(() => VocDataset.Open(data, "train"));
        Assert.Equal($"{split}: line 4: 'tràin 01 ✓' has 3 whitespace-separated fields, expected one image name; image names cannot contain " +
            "spaces or tabs (split lists and labels.txt separate fields by whitespace): rename the files", e.Message);
        var info = CliRunner.Run("info", "--data", data, "--split", "train");
        Assert.Equal(1, info.Code);
        Assert.Equal("error: " + e.Message, info.Err.Trim().Split('\n').Last());
        // The two-path list form holds exactly an image and a mask path.
        File.WriteAllText(split, "/JPEGImages/a b.jpg /SegmentationClassAug/a b.png\n");
        Assert.Contains("line 1: '/JPEGImages/a b.jpg /SegmentationClassAug/a b.png' has 4 whitespace-separated fields, expected an image path and a mask path",
            Assert.Throws<WeakSegException>(() => VocDataset.Open(data, "train")).Message);

        // Without the spaces, the same non-ASCII name works.
        File.WriteAllLines(split, Enumerable.Range(0, 8).Select(i => i == 3 ? "tràin 01 ✓" : $"train_{i:D6}"));
        Rename("tràin 01 ✓", "tràin_01_✓");
        var dataset = VocDataset.Open(data, "train");
        Assert.Equal("tràin_01_✓", dataset.Samples[3].Name);
        Assert.Equal(classesOf3, dataset.Samples[3].Classes.Length);
        Assert.Equal(32, dataset.LoadImage(3).Width);
        Assert.NotNull(dataset.LoadMask(3));
    }

    [Fact]
    public void Train_names_a_corrupt_image_before_training_and_leaves_no_run_folder()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        File.WriteAllText(Image(data, 6), "hello");
        var config = dir.File("tiny.json");
        File.WriteAllText(config, PipelineTestData.TinyOverlay(steps: 4).ToJsonString());
        var run = dir.File("run");
        var train = CliRunner.Run("train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config);
        Assert.Equal(1, train.Code);
        Assert.Equal($"error: {Image(data, 6)}: not a readable image (corrupt or unsupported format)", train.Err.Trim().Split('\n').Last());
        Assert.False(Directory.Exists(run));

        // Refusals of the options leave nothing either: an unknown device, a batch larger than the split.
        File.Copy(Image(data, 5), Image(data, 6), overwrite: true);
        Assert.Equal(1, CliRunner.Run("train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config, "--device", "tpu").Code);
        Assert.False(Directory.Exists(run));
        Assert.Equal(1, CliRunner.Run("train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config, "--batch-size", "100").Code);
        Assert.False(Directory.Exists(run));
    }

    [Fact]
    public void Seg_train_names_a_wrong_size_mask_before_training_and_leaves_no_run_folder()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        LabelPng.Write(Mask(data, 3), new LabelMap(16, 8, new byte[16 * 8]));
        var run = dir.File("seg");
        var seg = CliRunner.Run("seg-train", "--labels", "gt", "--data", data, "--split", "train", "--out", run, "--steps", "2", "--batch-size", "4");
        Assert.Equal(1, seg.Code);
        Assert.Contains($"error: {Mask(data, 3)}: mask is 16x8 but its image is 32x32", seg.Err);
        Assert.False(Directory.Exists(run));
    }

    [Fact]
    public void A_pipeline_refused_before_its_first_stage_leaves_no_folder()
    {
        using var dir = TestPaths.NewTempDir();
        var result = CliRunner.Run("pipeline", "--data", dir.File("nope"), "--out", dir.File("p"), "--cam-steps", "2", "--seg-steps", "2");
        Assert.Equal(1, result.Code);
        Assert.Contains("dataset directory not found", result.Err);
        Assert.False(Directory.Exists(dir.File("p")));
    }
}
