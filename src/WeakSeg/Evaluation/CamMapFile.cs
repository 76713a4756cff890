using WeakSeg.Interop;

namespace WeakSeg.Evaluation;

/// <summary>
/// Score maps of one image: <see cref="Maps"/> is [K', H, W] row-major, plane i holding the map of foreground class
/// <c>Classes[i]</c> (1..K), values in [0, 1].
/// </summary>
public sealed record CamMaps(string Name, float[] Maps, int[] Classes, int Height, int Width)
{
    public int PlaneSize => Height * Width;
    public ReadOnlySpan<float> Plane(int i) => Maps.AsSpan(i * PlaneSize, PlaneSize);
}

/// <summary>
/// The on-disk map contract between stages: <c>DIR/NAME.npy</c> (float32 or float16, shape [K', H, W]) and
/// <c>DIR/NAME.classes.npy</c> (int64, shape [K'], the foreground class index 1..K of each plane, distinct).
/// Values are finite and in [0, 1]. Writes are atomic and the maps file is written last, so an existing
/// <c>NAME.npy</c> means a complete pair.
/// </summary>
public static class CamMapFile
{
    public const string ClassesSuffix = ".classes.npy";

    public static string MapPath(string dir, string name) => Path.Combine(dir, name + ".npy");
    public static string ClassesPath(string dir, string name) => Path.Combine(dir, name + ClassesSuffix);
    public static bool Exists(string dir, string name) => File.Exists(MapPath(dir, name));

    /// <summary>Writes the pair atomically (classes first, maps last). Validates shapes, classes and values.</summary>
    /// <param name="maps">[K', H, W] row-major</param>
    /// <param name="classes">K' distinct foreground class indices (≥ 1)</param>
    /// <param name="float16">store the maps as <c>&lt;f2</c> (half the size; ~3 decimal digits)</param>
    public static void Write(string dir, string name, float[] maps, int[] classes, int height, int width, bool float16 = false)
    {
        ValidateName(name);
        var path = MapPath(dir, name);
        if (height <= 0 || width <= 0) throw WeakSegException.ForFile(path, $"map size {height}x{width} must be positive");
        if (maps.Length != (long)classes.Length * height * width)
            throw WeakSegException.ForFile(path, $"{maps.Length} map values do not match [{classes.Length}, {height}, {width}] (K' = number of classes)");
        var problem = CheckClasses(classes, null) ?? CheckValues(maps, height * width);
        if (problem != null) throw WeakSegException.ForFile(path, problem);
        Directory.CreateDirectory(dir);
        Npy.Write(ClassesPath(dir, name), NpyArray.FromInt64(classes.Select(c => (long)c).ToArray(), [classes.Length]));
        Npy.Write(path, NpyArray.FromFloat32(maps, [classes.Length, height, width], float16));
    }

    /// <summary>Reads and validates a pair. With <paramref name="numClasses"/> (K, foreground only) class indices must be in 1..K.
    /// Errors name the offending file.</summary>
    public static CamMaps Read(string dir, string name, int? numClasses = null)
    {
        var mapPath = MapPath(dir, name);
        var classesPath = ClassesPath(dir, name);
        if (!File.Exists(mapPath)) throw WeakSegException.ForFile(mapPath, "map file not found");
        if (!File.Exists(classesPath)) throw WeakSegException.ForFile(classesPath, $"class list not found (every NAME.npy needs a NAME{ClassesSuffix})");
        var mapArray = Npy.Read(mapPath);
        var classArray = Npy.Read(classesPath);
        if (classArray.DType is not (NpyDType.Int64 or NpyDType.UInt8))
            throw WeakSegException.ForFile(classesPath, $"class list has dtype {NpyArray.Descr(classArray.DType)}, expected <i8");
        if (classArray.Shape.Count != 1) throw WeakSegException.ForFile(classesPath, $"class list has shape {Npy.ShapeRepr(classArray.Shape)}, expected (K',)");
        if (mapArray.DType is not (NpyDType.Float32 or NpyDType.Float16))
            throw WeakSegException.ForFile(mapPath, $"maps have dtype {NpyArray.Descr(mapArray.DType)}, expected <f4 or <f2");
        if (mapArray.Shape.Count != 3) throw WeakSegException.ForFile(mapPath, $"maps have shape {Npy.ShapeRepr(mapArray.Shape)}, expected (K', H, W)");
        var longs = classArray.ToInt64();
        if (mapArray.Shape[0] != longs.Length)
            throw WeakSegException.ForFile(mapPath, $"maps have {mapArray.Shape[0]} planes but {classesPath} lists {longs.Length} classes");
        if (longs.Any(c => c < 1 || c > 254))
            throw WeakSegException.ForFile(classesPath, $"class index {longs.First(c => c < 1 || c > 254)} is not a foreground class (1..K)");
        var classes = longs.Select(c => (int)c).ToArray();
        var classProblem = CheckClasses(classes, numClasses);
        if (classProblem != null) throw WeakSegException.ForFile(classesPath, classProblem);
        int h = mapArray.Shape[1], w = mapArray.Shape[2];
        if (h <= 0 || w <= 0) throw WeakSegException.ForFile(mapPath, $"map size {h}x{w} must be positive");
        var maps = mapArray.ToFloat32();
        var valueProblem = CheckValues(maps, h * w);
        if (valueProblem != null) throw WeakSegException.ForFile(mapPath, valueProblem);
        return new CamMaps(name, maps, classes, h, w);
    }

    /// <summary>Image names that have a map file in <paramref name="dir"/>, sorted ordinally.</summary>
    public static IReadOnlyList<string> ListNames(string dir)
    {
        if (!Directory.Exists(dir)) throw WeakSegException.ForFile(dir, "map directory not found");
        return Directory.EnumerateFiles(dir, "*.npy")
            .Select(Path.GetFileName)
            .Where(f => f != null && !f.EndsWith(ClassesSuffix, StringComparison.Ordinal))
            .Select(f => f![..^4])
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    static void ValidateName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.IndexOfAny(['/', '\\']) >= 0)
            throw new WeakSegException($"'{name}' is not a valid image name for a map file");
    }

    static string? CheckClasses(int[] classes, int? numClasses)
    {
        var seen = new HashSet<int>();
        foreach (var c in classes)
        {
            if (c < 1 || c > (numClasses ?? 254))
                return numClasses is int k ? $"class index {c} is outside the foreground classes 1..{k}" : $"class index {c} is not a foreground class (1..254)";
            if (!seen.Add(c)) return $"class index {c} is listed twice";
        }
        return null;
    }

    static string? CheckValues(float[] maps, int planeSize)
    {
        for (int i = 0; i < maps.Length; i++)
        {
            float v = maps[i];
            if (!(v >= 0f && v <= 1f))
                return $"map value {v} at plane {i / planeSize}, pixel {i % planeSize} is not in [0, 1] (maps must be normalised per class)";
        }
        return null;
    }
}
