using System.Text.Json;
using WeakSeg.Data;
using WeakSeg.Data.Coco;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Data;

public class CocoTests
{
    [Fact]
    public void Compressed_rle_decodes_known_pycocotools_strings()
    {
        // pycocotools.mask.encode of an all-zero 30×30 mask gives 'Tl0' (detectron2 issue #844): one run of 900.
        Assert.Equal([900L], CocoRle.DecodeString("Tl0"));
        // A Mask R-CNN result for a 720×1280 image (mmdetection issue #792), box ≈ [934.6, 252.9, 21.7, 26.6] (x, y, w, h).
        var runs = CocoRle.DecodeString("n[bd0f0je01O1O00000000000000000000000001O0000d0ZO_aS7");
        Assert.Equal(720L * 1280, runs.Sum());
        var map = new LabelMap(1280, 720);
        CocoRle.Paint(runs, map, 1);
        var (x0, y0, x1, y1) = BoundingBox(map);
        Assert.InRange(x0, 930, 940); Assert.InRange(x1, 950, 960);
        Assert.InRange(y0, 248, 258); Assert.InRange(y1, 274, 284);
        // A detector mask for a 576×752 image (cocoapi issue #550): many negative deltas; the runs must tile the image exactly.
        var runs2 = CocoRle.DecodeString("ZbQ:1ma06J3N2N1O2M4K6K3N1N3M3J7K4M2N3M2M5K7J3N1O2N2L4N2M3N1O2L4M3M3N2M2M5K4M4L3N1N4K4K5N2O10O0100O1O10O0110O000O100101OO0O0100O11O00O010O1010OO100O1013L000O01004MOO10O010020O0OO010010O000O10O1100O1OO100O2N2N010O001O2O0O001O2O1N2N001O1O1O1O1O001N2O1N3N0O2O1N3K5J5L3N3L4H8E;L4M2O2L4K5K5N2M2O3L4K4M3N2N2M4K5K4M5Khl?");
        Assert.Equal(576L * 752, runs2.Sum());
        Assert.All(runs2, r => Assert.True(r >= 0));
    }

    [Fact]
    public void Rle_string_encoding_round_trips_and_paints_column_major()
    {
        // Hand example: 3×2 image (h = 2, w = 3); column-major order (0,0),(0,1),(1,0),(1,1),(2,0),(2,1).
        // runs [1, 3, 2]: pixel (x=0,y=0) off, then (0,1),(1,0),(1,1) on, then (2,0),(2,1) off.
        var map = new LabelMap(3, 2);
        CocoRle.Paint([1, 3, 2], map, 9);
        Assert.Equal(new byte[] { 0, 9, 0, 9, 9, 0 }, map.Labels); // row-major: row 0 = (0,9,0), row 1 = (9,9,0)
        var rng = new Random(5);
        for (int trial = 0; trial < 20; trial++)
        {
            int h = rng.Next(1, 40), w = rng.Next(1, 40);
            var mask = new bool[h * w];
            for (int i = 0; i < mask.Length; i++) mask[i] = rng.NextDouble() < (trial % 2 == 0 ? 0.5 : 0.05);
            var r = CocoRle.Encode(mask, h, w);
            var s = CocoRle.EncodeString(r);
            Assert.Equal(r, CocoRle.DecodeString(s));
            var painted = new LabelMap(w, h);
            CocoRle.Paint(r, painted, 1);
            Assert.Equal(mask, painted.Labels.Select(v => v == 1).ToArray());
        }
        Assert.Throws<FormatException>(() => CocoRle.DecodeString("n[b"));
    }

    [Fact]
    public void Polygon_of_integer_rectangle_fills_exactly_its_pixels()
    {
        // Rectangle x ∈ [2, 6], y ∈ [1, 4] covers pixels x = 2..5, y = 1..3 (area 12).
        var mask = CocoPolygon.Rasterize([2, 1, 6, 1, 6, 4, 2, 4], 6, 8);
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 8; x++)
                Assert.True(mask[y * 8 + x] == (x >= 2 && x <= 5 && y >= 1 && y <= 3), $"pixel ({x},{y})");
    }

    [Fact]
    public void Polygon_of_right_triangle_keeps_pixels_whose_centre_is_strictly_inside()
    {
        // Triangle (0,0),(8,0),(0,8): centre (x+.5, y+.5) strictly inside ⇔ x + y ≤ 6 (centres on the hypotenuse are out).
        var mask = CocoPolygon.Rasterize([0, 0, 8, 0, 0, 8], 10, 10);
        for (int y = 0; y < 10; y++)
            for (int x = 0; x < 10; x++)
                Assert.True(mask[y * 10 + x] == (x + y <= 6), $"pixel ({x},{y})");
        Assert.Equal(28, mask.Count(v => v));
    }

    [Fact]
    public void Polygon_agrees_with_pixel_centre_test_away_from_edges()
    {
        // Brute-force second implementation: even-odd point-in-polygon at pixel centres, compared where the
        // centre is more than 0.25 px from every edge (the fine-grid rounding only matters near edges).
        var rng = new Random(11);
        for (int trial = 0; trial < 10; trial++)
        {
            int n = rng.Next(3, 8);
            var xy = new double[2 * n];
            for (int i = 0; i < n; i++)
            {
                double a = 2 * Math.PI * i / n + rng.NextDouble() * 0.5, r = 4 + rng.NextDouble() * 10;
                xy[2 * i] = 15 + r * Math.Cos(a) + rng.NextDouble(); xy[2 * i + 1] = 13 + r * Math.Sin(a);
            }
            var mask = CocoPolygon.Rasterize(xy, 28, 32);
            int compared = 0;
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 32; x++)
                {
                    double px = x + 0.5, py = y + 0.5;
                    if (DistanceToEdges(xy, px, py) < 0.25) continue;
                    Assert.True(mask[y * 32 + x] == InsideEvenOdd(xy, px, py), $"trial {trial} pixel ({x},{y})");
                    compared++;
                }
            Assert.True(compared > 600);
        }
    }

    [Fact]
    public void Builder_maps_categories_paints_crowd_255_later_instance_wins_and_writes_lists()
    {
        using var dir = TestPaths.NewTempDir();
        var json = new
        {
            images = new object[]
            {
                new { id = 7, file_name = "COCO_train2014_000000000007.jpg", width = 8, height = 6 },
                new { id = 9, file_name = "COCO_train2014_000000000009.jpg", width = 4, height = 3 },
                new { id = 11, file_name = "COCO_train2014_000000000011.jpg", width = 4, height = 3 }, // no annotations: left out
            },
            categories = new object[]
            {
                new { id = 90, name = "toothbrush" }, new { id = 1, name = "person" }, new { id = 3, name = "car" },
            },
            annotations = new object[]
            {
                // person rectangle x 0..4, y 0..3 → class 1
                new { id = 1, image_id = 7, category_id = 1, iscrowd = 0, segmentation = new[] { new double[] { 0, 0, 4, 0, 4, 3, 0, 3 } } },
                // toothbrush rectangle x 2..6, y 1..5 → class 3, overlaps the person and wins (later)
                new { id = 2, image_id = 7, category_id = 90, iscrowd = 0, segmentation = new[] { new double[] { 2, 1, 6, 1, 6, 5, 2, 5 } } },
                // crowd car as uncompressed RLE over column x = 7 (pixels 42..47 column-major) → 255
                new { id = 3, image_id = 7, category_id = 3, iscrowd = 1, segmentation = (object)new { counts = new[] { 42, 6 }, size = new[] { 6, 8 } } },
                // image 9: compressed RLE of car over column 1 (column-major pixels 3..5)
                new { id = 4, image_id = 9, category_id = 3, iscrowd = 0, segmentation = (object)new { counts = CocoRle.EncodeString([3, 3, 6]), size = new[] { 3, 4 } } },
            },
        };
        var annPath = dir.File("instances_train2014.json");
        File.WriteAllText(annPath, JsonSerializer.Serialize(json));
        var outDir = Path.Combine(dir.Path, "coco");
        var summary = CocoMaskBuilder.Build(annPath, outDir);
        Assert.Equal("train", summary.Split);
        Assert.Equal(2, summary.MasksWritten);
        Assert.Equal(1, summary.SkippedWithoutLabels);
        Assert.Equal(1, summary.CrowdAnnotations);

        Assert.Equal(["background", "person", "car", "toothbrush"], File.ReadAllLines(Path.Combine(outDir, "classes.txt")));
        Assert.Equal(["COCO_train2014_000000000007", "COCO_train2014_000000000009"],
            File.ReadAllLines(Path.Combine(outDir, "ImageSets", "Segmentation", "train.txt")));
        Assert.Equal(["COCO_train2014_000000000007 1 2 3", "COCO_train2014_000000000009 2"], File.ReadAllLines(Path.Combine(outDir, "labels.txt")));

        var m7 = LabelPng.Read(Path.Combine(outDir, "SegmentationClass", "COCO_train2014_000000000007.png"));
        var expected = new byte[]
        {
            1, 1, 1, 1, 0, 0, 0, 255,
            1, 1, 3, 3, 3, 3, 0, 255,
            1, 1, 3, 3, 3, 3, 0, 255,
            0, 0, 3, 3, 3, 3, 0, 255,
            0, 0, 3, 3, 3, 3, 0, 255,
            0, 0, 0, 0, 0, 0, 0, 255,
        };
        Assert.Equal(expected, m7.Labels);
        var m9 = LabelPng.Read(Path.Combine(outDir, "SegmentationClass", "COCO_train2014_000000000009.png"));
        Assert.Equal(new byte[] { 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0 }, m9.Labels);

        // The same reader opens the converted layout once images are there; labels come from labels.txt.
        foreach (var name in new[] { "COCO_train2014_000000000007", "COCO_train2014_000000000009" })
        {
            var m = LabelPng.Read(Path.Combine(outDir, "SegmentationClass", name + ".png"));
            ImageCodec.Save(Path.Combine(outDir, "train2014", name + ".jpg"), new RgbImage(m.Width, m.Height));
        }
        var ds = VocDataset.Open(outDir, "train");
        Assert.Equal(3, ds.NumClasses);
        Assert.Equal([1, 2, 3], ds.Samples[0].Classes); // crowd car counts as an image-level label
        Assert.Empty(ds.Validate().Problems);
    }

    [Fact]
    public void Polygons_of_one_annotation_are_united_not_xored()
    {
        // Two overlapping squares painted into one map: the overlap stays filled (pycocotools merges the per-polygon RLEs by union).
        var map = new LabelMap(8, 4);
        CocoPolygon.Paint([0, 0, 4, 0, 4, 4, 0, 4], map, 5);
        CocoPolygon.Paint([2, 0, 6, 0, 6, 4, 2, 4], map, 5);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 8; x++) Assert.Equal(x < 6 ? 5 : 0, map[x, y]);
    }

    [Fact]
    public void Builder_errors_name_the_annotation_file()
    {
        using var dir = TestPaths.NewTempDir();
        var annPath = dir.File("instances_val2014.json");
        File.WriteAllText(annPath, """{"images":[{"id":1,"file_name":"a.jpg","width":2,"height":2}],"categories":[{"id":1,"name":"x"}],"annotations":[{"image_id":1,"category_id":5,"segmentation":[[0,0,1,0,1,1]]}]}""");
        var e = Assert.Throws<WeakSegException>(() => CocoMaskBuilder.Build(annPath, Path.Combine(dir.Path, "o")));
        Assert.StartsWith(annPath + ":", e.Message);
        Assert.Contains("category_id 5", e.Message);
        File.WriteAllText(annPath, "{ not json");
        e = Assert.Throws<WeakSegException>(() => CocoMaskBuilder.Build(annPath, Path.Combine(dir.Path, "o")));
        Assert.Contains("not valid JSON", e.Message);
    }

    static (int X0, int Y0, int X1, int Y1) BoundingBox(LabelMap m)
    {
        int x0 = int.MaxValue, y0 = int.MaxValue, x1 = -1, y1 = -1;
        for (int y = 0; y < m.Height; y++)
            for (int x = 0; x < m.Width; x++)
                if (m[x, y] != 0) { x0 = Math.Min(x0, x); y0 = Math.Min(y0, y); x1 = Math.Max(x1, x); y1 = Math.Max(y1, y); }
        return (x0, y0, x1, y1);
    }

    static bool InsideEvenOdd(double[] xy, double px, double py)
    {
        int n = xy.Length / 2;
        bool inside = false;
        for (int i = 0, j = n - 1; i < n; j = i++)
        {
            double xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
            if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) inside = !inside;
        }
        return inside;
    }

    static double DistanceToEdges(double[] xy, double px, double py)
    {
        int n = xy.Length / 2;
        double best = double.MaxValue;
        for (int i = 0; i < n; i++)
        {
            int j = (i + 1) % n;
            double ax = xy[2 * i], ay = xy[2 * i + 1], bx = xy[2 * j], by = xy[2 * j + 1];
            double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
            double t = len2 == 0 ? 0 : Math.Clamp(((px - ax) * dx + (py - ay) * dy) / len2, 0, 1);
            best = Math.Min(best, Math.Sqrt(Math.Pow(px - ax - t * dx, 2) + Math.Pow(py - ay - t * dy, 2)));
        }
        return best;
    }
}
