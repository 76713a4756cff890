using System.Text.Json;
using WeakSeg.IO;

namespace WeakSeg.Data.Coco;

/// <summary>What <see cref="CocoMaskBuilder.Build"/> did.</summary>
public sealed record CocoConversionSummary(string Split, int Images, int MasksWritten, int SkippedWithoutLabels, int Annotations,
    int CrowdAnnotations, IReadOnlyList<string> MissingImages, string ListFile);

/// <summary>
/// Converts COCO 2014 instance annotations to the VOC-style layout that <see cref="VocDataset"/> reads:
/// <code>
/// OUT/SegmentationClass/NAME.png      palette PNG, 0 = background, 1..80 = category rank, 255 = crowd (ignore)
/// OUT/ImageSets/Segmentation/SPLIT.txt image names (file name without .jpg), annotated images only
/// OUT/classes.txt                     background + the 80 category names in category-id order
/// OUT/labels.txt                      NAME i1 i2 … (class indices; merged with lines already there for other images)
/// OUT/JPEGImages                      symlink to --images (when given); otherwise put/link train2014/ and val2014/ under OUT
/// </code>
/// Category ids are mapped by rank: sorted ids 1, 2, … 90 → 1..80. Pixels: crowd regions are painted 255 first, then the
/// non-crowd instances in annotation order, so a later instance wins where instances overlap and instances win over crowd.
/// Image-level labels are the categories of all the image's annotations (crowd included).
/// </summary>
public static class CocoMaskBuilder
{
    /// <summary>"instances_train2014.json" → "train", "instances_val2014.json" → "val", else the file's stem.</summary>
    public static string DefaultSplitName(string annotationsPath)
    {
        var stem = Path.GetFileNameWithoutExtension(annotationsPath);
        if (stem.Contains("train", StringComparison.OrdinalIgnoreCase)) return "train";
        if (stem.Contains("val", StringComparison.OrdinalIgnoreCase)) return "val";
        return stem;
    }

    sealed record ImageInfo(long Id, string Name, int Width, int Height);
    sealed record Annotation(long ImageId, int Class, bool Crowd, JsonElement Segmentation, int Index);

    public static CocoConversionSummary Build(string annotationsPath, string outRoot, string? imagesDir = null, string? split = null,
        IProgress<ProgressUpdate>? progress = null)
    {
        if (!File.Exists(annotationsPath)) throw WeakSegException.ForFile(annotationsPath, "annotation file not found");
        if (imagesDir != null && !Directory.Exists(imagesDir)) throw WeakSegException.ForFile(imagesDir, "images folder does not exist");
        split ??= DefaultSplitName(annotationsPath);
        if (split.Length == 0 || split.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0) throw new WeakSegException($"invalid split name '{split}'");

        JsonDocument doc;
        using (var fs = new FileStream(annotationsPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20))
        {
            try { doc = JsonDocument.Parse(fs, new JsonDocumentOptions { MaxDepth = 64 }); }
            catch (JsonException e) { throw WeakSegException.ForFile(annotationsPath, $"not valid JSON ({e.Message})"); }
        }
        using (doc)
        {
            var rootEl = doc.RootElement;
            var categories = ReadCategories(rootEl, annotationsPath);
            var classNames = new ClassNames(new[] { "background" }.Concat(categories.Select(c => c.Name)), annotationsPath + " categories");
            var classOf = new Dictionary<long, int>();
            for (int i = 0; i < categories.Count; i++) classOf[categories[i].Id] = i + 1;

            var images = ReadImages(rootEl, annotationsPath);
            var byImage = new Dictionary<long, List<Annotation>>();
            int annotationCount = 0, crowdCount = 0;
            if (!rootEl.TryGetProperty("annotations", out var anns) || anns.ValueKind != JsonValueKind.Array)
                throw WeakSegException.ForFile(annotationsPath, "has no \"annotations\" array (an instances_*.json file is needed)");
            int index = 0;
            foreach (var a in anns.EnumerateArray())
            {
                index++;
                long imageId = GetLong(a, "image_id", annotationsPath, index);
                long categoryId = GetLong(a, "category_id", annotationsPath, index);
                if (!classOf.TryGetValue(categoryId, out int cls))
                    throw WeakSegException.ForFile(annotationsPath, $"annotation {index}: category_id {categoryId} is not in \"categories\"");
                if (!images.ContainsKey(imageId))
                    throw WeakSegException.ForFile(annotationsPath, $"annotation {index}: image_id {imageId} is not in \"images\"");
                bool crowd = a.TryGetProperty("iscrowd", out var ic) && ic.ValueKind == JsonValueKind.Number && ic.GetInt32() != 0;
                if (!a.TryGetProperty("segmentation", out var seg))
                    throw WeakSegException.ForFile(annotationsPath, $"annotation {index}: no \"segmentation\"");
                if (!byImage.TryGetValue(imageId, out var list)) byImage[imageId] = list = new List<Annotation>();
                list.Add(new Annotation(imageId, cls, crowd, seg, index));
                annotationCount++;
                if (crowd) crowdCount++;
            }

            var layout = Directory.CreateDirectory(outRoot).FullName;
            var masksDir = Path.Combine(layout, "SegmentationClass");
            var splitsDir = Path.Combine(layout, "ImageSets", "Segmentation");
            Directory.CreateDirectory(masksDir);
            Directory.CreateDirectory(splitsDir);

            var todo = images.Values.Where(im => byImage.ContainsKey(im.Id)).OrderBy(im => im.Name, StringComparer.Ordinal).ToArray();
            int skipped = images.Count - todo.Length;
            var missing = new List<string>();
            if (imagesDir != null)
                foreach (var im in todo)
                    if (!File.Exists(Path.Combine(imagesDir, im.Name + ".jpg"))) missing.Add(Path.Combine(imagesDir, im.Name + ".jpg"));

            var labels = new int[todo.Length][];
            var errors = new System.Collections.Concurrent.ConcurrentBag<(int, string)>();
            long done = 0;
            Parallel.For(0, todo.Length, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
            {
                var im = todo[i];
                var list = byImage[im.Id];
                try
                {
                    var mask = new LabelMap(im.Width, im.Height);
                    foreach (var a in list.Where(a => a.Crowd)) PaintSegmentation(a, mask, LabelMap.Ignore, im);
                    foreach (var a in list.Where(a => !a.Crowd)) PaintSegmentation(a, mask, (byte)a.Class, im);
                    LabelPng.Write(Path.Combine(masksDir, im.Name + ".png"), mask);
                    labels[i] = list.Select(a => a.Class).Distinct().Order().ToArray();
                }
                catch (FormatException e) { errors.Add((i, $"image {im.Name}: {e.Message}")); }
                long d = Interlocked.Increment(ref done);
                if (d % 256 == 0 || d == todo.Length) progress?.Report(new ProgressUpdate(d, todo.Length, "masks"));
            });
            if (!errors.IsEmpty)
                throw WeakSegException.ForFile(annotationsPath, errors.OrderBy(e => e.Item1).First().Item2);

            // classes.txt: refuse to silently mix two different category lists in one folder.
            var classesFile = Path.Combine(layout, "classes.txt");
            if (File.Exists(classesFile))
            {
                var existing = ClassNames.Load(classesFile);
                if (!existing.All.SequenceEqual(classNames.All))
                    throw WeakSegException.ForFile(classesFile, "exists with a different class list than the categories of " + annotationsPath);
            }
            else classNames.Save(classesFile);

            // labels.txt: keep lines of other images (e.g. the other split), replace this split's images.
            var labelsFile = Path.Combine(layout, "labels.txt");
            var all = File.Exists(labelsFile) ? ImageLabelsFile.Read(labelsFile, classNames) : new Dictionary<string, int[]>(StringComparer.Ordinal);
            for (int i = 0; i < todo.Length; i++) all[todo[i].Name] = labels[i];
            ImageLabelsFile.Write(labelsFile, all);

            var listFile = Path.Combine(splitsDir, split + ".txt");
            AtomicFile.WriteAllLines(listFile, todo.Select(im => im.Name));

            if (imagesDir != null)
            {
                var link = Path.Combine(layout, "JPEGImages");
                if (!Directory.Exists(link) && !File.Exists(link))
                {
                    try { Directory.CreateSymbolicLink(link, Path.GetFullPath(imagesDir)); }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        throw WeakSegException.ForFile(link, $"could not create a symbolic link to {imagesDir} ({e.Message}); link or copy the images there yourself");
                    }
                }
            }
            return new CocoConversionSummary(split, images.Count, todo.Length, skipped, annotationCount, crowdCount, missing, listFile);
        }
    }

    static void PaintSegmentation(Annotation a, LabelMap mask, byte value, ImageInfo im)
    {
        var seg = a.Segmentation;
        switch (seg.ValueKind)
        {
            case JsonValueKind.Array: // polygons
                foreach (var poly in seg.EnumerateArray())
                {
                    if (poly.ValueKind != JsonValueKind.Array) throw new FormatException($"annotation {a.Index}: polygon is not an array of numbers");
                    var xy = new double[poly.GetArrayLength()];
                    int n = 0;
                    foreach (var v in poly.EnumerateArray()) xy[n++] = v.GetDouble();
                    if (n % 2 != 0) throw new FormatException($"annotation {a.Index}: polygon has an odd number of coordinates ({n})");
                    CocoPolygon.Paint(xy, mask, value);
                }
                break;
            case JsonValueKind.Object: // RLE
                if (!seg.TryGetProperty("counts", out var counts) || !seg.TryGetProperty("size", out var size) || size.GetArrayLength() != 2)
                    throw new FormatException($"annotation {a.Index}: RLE segmentation needs \"counts\" and \"size\": [h, w]");
                int h = size[0].GetInt32(), w = size[1].GetInt32();
                if (h != im.Height || w != im.Width)
                    throw new FormatException($"annotation {a.Index}: RLE size {w}x{h} differs from the image size {im.Width}x{im.Height}");
                long[] runs = counts.ValueKind switch
                {
                    JsonValueKind.String => CocoRle.DecodeString(counts.GetString()!),
                    JsonValueKind.Array => counts.EnumerateArray().Select(c => c.GetInt64()).ToArray(),
                    _ => throw new FormatException($"annotation {a.Index}: RLE counts must be a string or an array"),
                };
                CocoRle.Paint(runs, mask, value);
                break;
            default:
                throw new FormatException($"annotation {a.Index}: segmentation must be polygons or an RLE object");
        }
    }

    static List<(long Id, string Name)> ReadCategories(JsonElement root, string path)
    {
        if (!root.TryGetProperty("categories", out var cats) || cats.ValueKind != JsonValueKind.Array || cats.GetArrayLength() == 0)
            throw WeakSegException.ForFile(path, "has no \"categories\" array");
        var list = new List<(long, string)>();
        int i = 0;
        foreach (var c in cats.EnumerateArray())
        {
            i++;
            long id = GetLong(c, "id", path, i, "category");
            var name = c.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : throw WeakSegException.ForFile(path, $"category {i} has no name");
            list.Add((id, name));
        }
        if (list.Count > 254) throw WeakSegException.ForFile(path, $"has {list.Count} categories; at most 254 fit in 8-bit masks");
        var ids = list.Select(c => c.Item1).ToList();
        if (ids.Distinct().Count() != ids.Count) throw WeakSegException.ForFile(path, "has duplicate category ids");
        return list.OrderBy(c => c.Item1).ToList();
    }

    static Dictionary<long, ImageInfo> ReadImages(JsonElement root, string path)
    {
        if (!root.TryGetProperty("images", out var imgs) || imgs.ValueKind != JsonValueKind.Array)
            throw WeakSegException.ForFile(path, "has no \"images\" array");
        var result = new Dictionary<long, ImageInfo>();
        int i = 0;
        foreach (var im in imgs.EnumerateArray())
        {
            i++;
            long id = GetLong(im, "id", path, i, "image");
            var file = im.TryGetProperty("file_name", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString()! : throw WeakSegException.ForFile(path, $"image {i} has no file_name");
            int w = (int)GetLong(im, "width", path, i, "image"), h = (int)GetLong(im, "height", path, i, "image");
            if (w <= 0 || h <= 0) throw WeakSegException.ForFile(path, $"image {i} ({file}) has size {w}x{h}");
            if (!result.TryAdd(id, new ImageInfo(id, Path.GetFileNameWithoutExtension(file), w, h)))
                throw WeakSegException.ForFile(path, $"image id {id} appears twice");
        }
        return result;
    }

    static long GetLong(JsonElement e, string property, string path, int index, string what = "annotation")
    {
        if (e.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long x)) return x;
        throw WeakSegException.ForFile(path, $"{what} {index}: missing or non-integer \"{property}\"");
    }
}
