using WeakSeg.Data;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Data;

public class VocDatasetTests
{
    [Fact]
    public void Open_reads_split_paths_and_labels_from_masks()
    {
        using var dir = TestPaths.NewTempDir();
        var m1 = new LabelMap(6, 4); m1[0, 0] = 15; m1[1, 1] = 3; m1[2, 2] = 255;
        var m2 = new LabelMap(6, 4);
        VocTestData.Add(dir.Path, "train", "2007_000001", new RgbImage(6, 4), m1);
        VocTestData.Add(dir.Path, "train", "2007_000002", new RgbImage(6, 4), m2);
        var ds = VocDataset.Open(dir.Path, "train");
        Assert.Equal(20, ds.NumClasses);
        Assert.Equal("train", ds.Split);
        Assert.Equal(["2007_000001", "2007_000002"], ds.Samples.Select(s => s.Name));
        Assert.Equal([3, 15], ds.Samples[0].Classes);
        Assert.Empty(ds.Samples[1].Classes);
        Assert.Equal(Path.Combine(dir.Path, "JPEGImages", "2007_000001.jpg"), ds.Samples[0].ImagePath);
        Assert.Equal(Path.Combine(dir.Path, "SegmentationClass", "2007_000001.png"), ds.Samples[0].MaskPath);
        Assert.False(ds.HasLabelsFile);
    }

    [Fact]
    public void Labels_file_accepts_names_and_indices_and_masks_in_the_aug_folder()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllLines(Path.Combine(dir.Path, "classes.txt"), ["background", "cat", "traffic light", "dog"]);
        VocTestData.Add(dir.Path, "train", "a", new RgbImage(4, 4), null);
        VocTestData.Add(dir.Path, "train", "b", new RgbImage(4, 4), null);
        VocTestData.Add(dir.Path, "train", "c", new RgbImage(4, 4), null);
        var aug = new LabelMap(4, 4); aug[3, 3] = 2;
        LabelPng.Write(Path.Combine(dir.Path, "SegmentationClassAug", "c.png"), aug); // no labels.txt line: falls back to the mask
        File.WriteAllLines(Path.Combine(dir.Path, "labels.txt"), ["a dog CAT", "# comment", "b 2 traffic_light 1"]);
        var ds = VocDataset.Open(dir.Path, "train");
        Assert.Equal(3, ds.NumClasses);
        Assert.True(ds.HasLabelsFile);
        Assert.Equal([1, 3], ds.Samples[0].Classes);
        Assert.Equal([1, 2], ds.Samples[1].Classes);
        Assert.Equal([2], ds.Samples[2].Classes);
        Assert.EndsWith(Path.Combine("SegmentationClassAug", "c.png"), ds.Samples[2].MaskPath);
    }

    [Fact]
    public void Unknown_class_name_in_labels_file_names_file_line_and_name()
    {
        using var dir = TestPaths.NewTempDir();
        VocTestData.Add(dir.Path, "train", "a", new RgbImage(4, 4), null);
        var labels = Path.Combine(dir.Path, "labels.txt");
        File.WriteAllLines(labels, ["a person", "", "b aeroplane zebra"]);
        var e = Assert.Throws<WeakSegException>(() => VocDataset.Open(dir.Path, "train"));
        Assert.StartsWith(labels + ":", e.Message);
        Assert.Contains("line 3", e.Message);
        Assert.Contains("'zebra'", e.Message);
        File.WriteAllLines(labels, ["a 21"]);
        e = Assert.Throws<WeakSegException>(() => VocDataset.Open(dir.Path, "train"));
        Assert.Contains("class index 21 is outside 1..20", e.Message);
    }

    [Fact]
    public void Missing_jpeg_for_a_listed_image_names_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        VocTestData.CreateBlocksDataset(dir.Path, 2);
        File.AppendAllLines(Path.Combine(dir.Path, "ImageSets", "Segmentation", "train.txt"), ["ghost"]);
        var e = Assert.Throws<WeakSegException>(() => VocDataset.Open(dir.Path, "train"));
        Assert.StartsWith(Path.Combine(dir.Path, "JPEGImages", "ghost.jpg") + ":", e.Message);
        Assert.Contains("does not exist", e.Message);
        // Lenient opening keeps the good images and reports the bad one.
        var ds = VocDataset.OpenLenient(dir.Path, "train", out var problems);
        Assert.Equal(2, ds.Samples.Count);
        Assert.Single(problems);
    }

    [Fact]
    public void Image_without_mask_or_labels_is_an_error()
    {
        using var dir = TestPaths.NewTempDir();
        VocTestData.Add(dir.Path, "val", "x", new RgbImage(4, 4), null);
        var e = Assert.Throws<WeakSegException>(() => VocDataset.Open(dir.Path, "val"));
        Assert.Contains(Path.Combine("SegmentationClass", "x.png"), e.Message);
        Assert.Contains("labels of this image are unknown", e.Message);
    }

    [Fact]
    public void Mask_value_outside_class_range_names_file_value_and_pixel()
    {
        using var dir = TestPaths.NewTempDir();
        var m = new LabelMap(5, 3); m[4, 2] = 21; m[0, 0] = 255;
        VocTestData.Add(dir.Path, "train", "bad", new RgbImage(5, 3), m);
        var e = Assert.Throws<WeakSegException>(() => VocDataset.Open(dir.Path, "train"));
        Assert.StartsWith(Path.Combine(dir.Path, "SegmentationClass", "bad.png") + ":", e.Message);
        Assert.Contains("mask value 21 at pixel (4,2)", e.Message);
        Assert.Contains("0..20", e.Message);
    }

    [Fact]
    public void Validate_collects_corrupt_image_truncated_image_and_size_mismatch()
    {
        using var dir = TestPaths.NewTempDir();
        VocTestData.CreateBlocksDataset(dir.Path, 4);
        // img_001: not an image at all; img_002: truncated JPEG; img_003: mask of the wrong size.
        File.WriteAllText(Path.Combine(dir.Path, "JPEGImages", "img_001.jpg"), "this is not a jpeg");
        var jpeg2 = Path.Combine(dir.Path, "JPEGImages", "img_002.jpg");
        var bytes = File.ReadAllBytes(jpeg2);
        File.WriteAllBytes(jpeg2, bytes[..(bytes.Length * 2 / 3)]);
        var mask3 = Path.Combine(dir.Path, "SegmentationClass", "img_003.png");
        LabelPng.Write(mask3, new LabelMap(41, 32));

        var ds = VocDataset.Open(dir.Path, "train"); // cheap checks pass: files exist, masks readable
        var report = ds.Validate();
        Assert.Equal(3, report.Problems.Count);
        Assert.Equal(Path.Combine(dir.Path, "JPEGImages", "img_001.jpg"), report.Problems[0].Path);
        Assert.Contains("not a readable image", report.Problems[0].Problem);
        Assert.Equal(jpeg2, report.Problems[1].Path);
        Assert.Contains("truncated", report.Problems[1].Problem);
        Assert.Equal(mask3, report.Problems[2].Path);
        Assert.Equal("mask is 41x32 but its image is 40x32", report.Problems[2].Problem);
    }

    [Fact]
    public void Validate_counts_images_and_pixels_per_class()
    {
        using var dir = TestPaths.NewTempDir();
        var m1 = new LabelMap(4, 2, [0, 0, 1, 1, 255, 2, 2, 2]);
        var m2 = new LabelMap(4, 2, [1, 1, 1, 1, 0, 0, 0, 0]);
        VocTestData.Add(dir.Path, "train", "a", new RgbImage(4, 2), m1);
        VocTestData.Add(dir.Path, "train", "b", new RgbImage(4, 2), m2);
        var report = VocDataset.Open(dir.Path, "train").Validate();
        Assert.Empty(report.Problems);
        Assert.Equal(2, report.ImagesWithMasks);
        Assert.Equal(2, report.ImagesPerClass[1]);
        Assert.Equal(1, report.ImagesPerClass[2]);
        Assert.Equal(0, report.ImagesPerClass[3]);
        Assert.Equal([6L, 6L, 3L], report.PixelsPerClass[..3]);
        Assert.Equal(1, report.IgnorePixels);
        Assert.Equal(6.0 / 15.0, report.PixelShare(1), 12);
    }

    [Fact]
    public void Empty_or_missing_split_and_missing_root_are_clear_errors()
    {
        using var dir = TestPaths.NewTempDir();
        var missingRoot = Path.Combine(dir.Path, "nope");
        var e = Assert.Throws<WeakSegException>(() => VocDataset.Open(missingRoot, "train"));
        Assert.Equal(missingRoot + ": dataset root does not exist", e.Message);

        var list = Path.Combine(dir.Path, "ImageSets", "Segmentation", "train.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(list)!);
        File.WriteAllText(list, "\n  \n");
        e = Assert.Throws<WeakSegException>(() => VocDataset.Open(dir.Path, "train"));
        Assert.Equal(list + ": split 'train' is empty", e.Message);

        e = Assert.Throws<WeakSegException>(() => VocDataset.Open(dir.Path, "val"));
        Assert.Contains("split 'val' not found (available: train)", e.Message);
    }

    [Fact]
    public void Class_list_is_validated()
    {
        using var dir = TestPaths.NewTempDir();
        var file = Path.Combine(dir.Path, "classes.txt");
        File.WriteAllLines(file, ["background", "cat", "Cat"]);
        var e = Assert.Throws<WeakSegException>(() => ClassNames.Load(file));
        Assert.Equal(file + ": duplicate class name 'Cat' (entries 1 and 2)", e.Message);
        File.WriteAllLines(file, ["background"]);
        e = Assert.Throws<WeakSegException>(() => ClassNames.Load(file));
        Assert.Contains("at least 2 class names", e.Message);
        File.WriteAllLines(file, Enumerable.Range(0, 256).Select(i => "c" + i));
        e = Assert.Throws<WeakSegException>(() => ClassNames.Load(file));
        Assert.Contains("256 class names; at most 255", e.Message);
        File.WriteAllLines(file, ["background", "", "cat", "dog"]);
        var names = ClassNames.Load(file);
        Assert.Equal(2, names.NumClasses);
        Assert.Equal(2, names.IndexOf("DOG"));
        Assert.Equal(15, ClassNames.Voc.IndexOf("person"));
        Assert.Equal(-1, ClassNames.Voc.IndexOf("zebra"));
    }

    [Fact]
    public void Coco_style_image_folders_are_found()
    {
        using var dir = TestPaths.NewTempDir();
        var m = new LabelMap(4, 4); m[1, 1] = 7;
        ImageCodec.Save(Path.Combine(dir.Path, "val2014", "COCO_val2014_000000000042.jpg"), new RgbImage(4, 4));
        LabelPng.Write(Path.Combine(dir.Path, "SegmentationClass", "COCO_val2014_000000000042.png"), m);
        Directory.CreateDirectory(Path.Combine(dir.Path, "ImageSets", "Segmentation"));
        File.WriteAllLines(Path.Combine(dir.Path, "ImageSets", "Segmentation", "val.txt"), ["COCO_val2014_000000000042"]);
        var ds = VocDataset.Open(dir.Path, "val");
        Assert.Equal(Path.Combine(dir.Path, "val2014", "COCO_val2014_000000000042.jpg"), ds.Samples[0].ImagePath);
        Assert.Equal([7], ds.Samples[0].Classes);
    }
}
