namespace WeakSeg.Data.Synthetic;

/// <summary>What an image will contain, decided before any rendering (the first draws of the image's RNG).</summary>
/// <param name="ObjectClasses">class index of each object, in drawing order (later objects occlude earlier ones)</param>
/// <param name="Scene">background family</param>
public sealed record SyntheticImagePlan(int[] ObjectClasses, SceneKind Scene)
{
    /// <summary>The distinct classes planned, ascending.</summary>
    public int[] Classes => ObjectClasses.Distinct().Order().ToArray();
}

/// <summary>One rendered benchmark image with its hard mask and the ground truth behind it.</summary>
/// <param name="Image">anti-aliased RGB image (before JPEG)</param>
/// <param name="Mask">class indices 0..K with 255 on the ignore band around every object outline</param>
/// <param name="Scene">background family</param>
/// <param name="Objects">object instances in drawing order</param>
/// <param name="Classes">foreground classes present in <paramref name="Mask"/>, ascending (the image-level labels)</param>
public sealed record SyntheticImage(RgbImage Image, LabelMap Mask, SceneKind Scene, IReadOnlyList<ObjectPlacement> Objects, int[] Classes);

/// <summary>
/// Generates image <c>i</c> of a split from an RNG seeded by (seed, split, i) only, so images can be made in any order,
/// on any number of threads, with identical results.
/// </summary>
public static class SyntheticImageGenerator
{
    const int LayoutAttempts = 40;
    /// <summary>An object must keep at least this fraction of its own pixels after occlusion by later objects.</summary>
    public const double MinVisibleFraction = 0.5;

    static readonly SceneKind[] OrdinaryScenes = [SceneKind.Clouds, SceneKind.Sky, SceneKind.Grass, SceneKind.Bricks, SceneKind.Sand, SceneKind.Pebbles];

    static SyntheticRandom RandomFor(SyntheticDatasetConfig config, SyntheticSplit split, int index)
        => SyntheticRandom.For((ulong)config.Seed, (ulong)split, (ulong)index);

    /// <summary>The content plan of image <paramref name="index"/> (cheap: no rendering).</summary>
    public static SyntheticImagePlan Plan(SyntheticDatasetConfig config, SyntheticSplit split, int index)
        => Plan(config, RandomFor(config, split, index));

    static SyntheticImagePlan Plan(SyntheticDatasetConfig config, SyntheticRandom rng)
    {
        int k = config.NumClasses;
        bool twoClasses = k >= 2 && rng.Chance(0.4);
        int first = 1 + rng.Next(k);
        int[] objects;
        if (!twoClasses)
        {
            int count = 1 + rng.Pick([0.55, 0.3, 0.15]);
            objects = Enumerable.Repeat(first, count).ToArray();
        }
        else
        {
            int second = 1 + rng.Next(k - 1);
            if (second >= first) second++;
            objects = rng.Chance(0.65) ? [first, second] : [first, second, rng.Chance(0.5) ? first : second];
            // random drawing order (Fisher–Yates), so neither class is always on top
            for (int i = objects.Length - 1; i > 0; i--)
            {
                int j = rng.Next(i + 1);
                (objects[i], objects[j]) = (objects[j], objects[i]);
            }
        }
        bool hasTrap = k >= SyntheticClassCatalog.TrapClass && objects.Contains(SyntheticClassCatalog.TrapClass);
        double pWater = hasTrap ? config.TrapBackgroundProbability : config.TrapBackgroundElsewhereProbability;
        var scene = rng.Chance(pWater) ? SceneKind.Water : OrdinaryScenes[rng.Next(OrdinaryScenes.Length)];
        return new SyntheticImagePlan(objects, scene);
    }

    /// <summary>Renders image <paramref name="index"/> of <paramref name="split"/>.</summary>
    public static SyntheticImage Generate(SyntheticDatasetConfig config, SyntheticSplit split, int index)
    {
        var rng = RandomFor(config, split, index);
        var plan = Plan(config, rng);
        int size = config.ImageSize;
        var background = SceneBackground.Sample(plan.Scene, rng);

        ObjectPlacement[] objects = [];
        byte[] instances = [];
        bool accepted = false;
        for (int attempt = 0; attempt < LayoutAttempts && !accepted; attempt++)
        {
            objects = plan.ObjectClasses.Select(c => SampleObject(c, plan.ObjectClasses.Length, size, rng)).ToArray();
            instances = InstanceMap(objects, size);
            accepted = LayoutIsFair(objects, instances, size, config.BorderRadius);
        }
        if (!accepted)
        {
            // Rare (crowded small images): fall back to one large centred object of the first planned class.
            var only = SampleObject(plan.ObjectClasses[0], 1, size, rng);
            objects = [new ObjectPlacement(only.ClassIndex, only.Shape, only.Texture, size / 2.0, size / 2.0, size * 0.3,
                                           only.RotationRadians, only.Aspect, only.Mirrored)];
            instances = InstanceMap(objects, size);
        }

        var mask = BuildMask(objects, instances, size, config.BorderRadius);
        var image = Render(objects, background, size, config.Supersampling, rng);
        return new SyntheticImage(image, mask, plan.Scene, objects, mask.ForegroundClasses());
    }

    static ObjectPlacement SampleObject(int classIndex, int objectCount, int size, SyntheticRandom rng)
    {
        var spec = SyntheticClassCatalog.All[classIndex - 1];
        var shape = ObjectShape.Sample(spec.Shape, rng);
        // Colour: hue within ±HueSpread of the class centre (overlapping neighbours); 12 % of objects nearly grey.
        double hue = spec.HueCentre + rng.Uniform(-SyntheticClassCatalog.HueSpread, SyntheticClassCatalog.HueSpread);
        double sat = rng.Chance(0.12) ? rng.Uniform(0.04, 0.22) : rng.Uniform(0.45, 0.95);
        double val = rng.Uniform(0.45, 0.95);
        var primary = Rgb.FromHsv(hue, sat, val);
        double hue2 = rng.Chance(0.3) ? hue + 180 + rng.Uniform(-30, 30) : hue + rng.Uniform(-35, 35);
        double val2 = val < 0.7 ? val + rng.Uniform(0.25, 0.4) : val - rng.Uniform(0.3, 0.45);
        var secondary = Rgb.FromHsv(hue2, sat * rng.Uniform(0.5, 1.1), val2);
        var texture = ObjectTexture.Sample(spec.Texture, primary, secondary, rng);

        double maxScale = 0.32 - 0.05 * (objectCount - 1);
        double scale = size * rng.Uniform(0.14, maxScale) * spec.SizeFactor;
        double aspect = Math.Exp(rng.Uniform(Math.Log(0.8), Math.Log(1.25)));
        double margin = scale * 0.7;
        double cx = rng.Uniform(margin, size - margin), cy = rng.Uniform(margin, size - margin);
        double rotation = rng.Uniform(-spec.MaxRotationDegrees, spec.MaxRotationDegrees) * Math.PI / 180;
        bool mirrored = rng.Chance(0.5);
        return new ObjectPlacement(classIndex, shape, texture, cx, cy, scale, rotation, aspect, mirrored);
    }

    /// <summary>Topmost object (1-based, 0 = background) at each pixel centre.</summary>
    internal static byte[] InstanceMap(IReadOnlyList<ObjectPlacement> objects, int size)
    {
        var map = new byte[size * size];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                for (int k = objects.Count - 1; k >= 0; k--)
                    if (objects[k].Covers(x + 0.5, y + 0.5)) { map[y * size + x] = (byte)(k + 1); break; }
        return map;
    }

    /// <summary>Every object keeps ≥ <see cref="MinVisibleFraction"/> of its own area and enough labelled (non-border) pixels.</summary>
    static bool LayoutIsFair(IReadOnlyList<ObjectPlacement> objects, byte[] instances, int size, int borderRadius)
    {
        var ignore = IgnoreBand(instances, size, borderRadius);
        int minInterior = Math.Max(12, (int)(0.005 * size * size));
        for (int k = 0; k < objects.Count; k++)
        {
            int own = 0, visible = 0, interior = 0;
            var o = objects[k];
            int x0 = Math.Max(0, (int)Math.Floor(o.MinX)), x1 = Math.Min(size - 1, (int)Math.Ceiling(o.MaxX));
            int y0 = Math.Max(0, (int)Math.Floor(o.MinY)), y1 = Math.Min(size - 1, (int)Math.Ceiling(o.MaxY));
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++)
                {
                    if (o.Covers(x + 0.5, y + 0.5)) own++;
                    int i = y * size + x;
                    if (instances[i] == k + 1)
                    {
                        visible++;
                        if (!ignore[i]) interior++;
                    }
                }
            if (own == 0 || visible < MinVisibleFraction * own || interior < minInterior) return false;
        }
        return true;
    }

    /// <summary>Pixels within Manhattan distance <paramref name="radius"/> of a pixel of another instance (or background).</summary>
    internal static bool[] IgnoreBand(byte[] instances, int size, int radius)
    {
        var band = new bool[instances.Length];
        if (radius == 0) return band;
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                byte me = instances[y * size + x];
                bool hit = false;
                for (int dy = -radius; dy <= radius && !hit; dy++)
                {
                    int yy = y + dy;
                    if (yy < 0 || yy >= size) continue;
                    int span = radius - Math.Abs(dy);
                    for (int dx = -span; dx <= span; dx++)
                    {
                        int xx = x + dx;
                        if (xx < 0 || xx >= size) continue;
                        if (instances[yy * size + xx] != me) { hit = true; break; }
                    }
                }
                band[y * size + x] = hit;
            }
        return band;
    }

    static LabelMap BuildMask(IReadOnlyList<ObjectPlacement> objects, byte[] instances, int size, int borderRadius)
    {
        var ignore = IgnoreBand(instances, size, borderRadius);
        var mask = new LabelMap(size, size);
        for (int i = 0; i < instances.Length; i++)
            mask.Labels[i] = ignore[i] ? LabelMap.Ignore : instances[i] == 0 ? (byte)0 : (byte)objects[instances[i] - 1].ClassIndex;
        return mask;
    }

    /// <summary>
    /// Renders the objects over the background with S×S supersampling, then applies a global exposure/colour cast and mild
    /// sensor noise, and quantises to 8 bits.
    /// </summary>
    internal static RgbImage Render(IReadOnlyList<ObjectPlacement> objects, SceneBackground background, int size, int supersampling, SyntheticRandom rng)
    {
        var linear = RenderSupersampled(objects, (x, y) => background.ColorAt(x, y), size, supersampling);
        double gain = rng.Uniform(0.85, 1.12);
        var cast = new Rgb(gain * rng.Uniform(0.96, 1.04), gain * rng.Uniform(0.96, 1.04), gain * rng.Uniform(0.96, 1.04));
        double noiseSigma = rng.Uniform(0.004, 0.016);
        var pixels = new byte[size * size * 3];
        for (int i = 0; i < linear.Length; i++)
        {
            var c = linear[i];
            pixels[3 * i] = Quantize(c.R * cast.R + noiseSigma * rng.Normal());
            pixels[3 * i + 1] = Quantize(c.G * cast.G + noiseSigma * rng.Normal());
            pixels[3 * i + 2] = Quantize(c.B * cast.B + noiseSigma * rng.Normal());
        }
        return new RgbImage(size, size, pixels);
    }

    /// <summary>
    /// Anti-aliased colours (row-major, size×size): the background is evaluated at the pixel centre (normalised coordinates),
    /// objects at S×S sub-pixel samples where the topmost covering object wins; each pixel is the mean of its samples.
    /// </summary>
    internal static Rgb[] RenderSupersampled(IReadOnlyList<ObjectPlacement> objects, Func<double, double, Rgb> background, int size, int supersampling)
    {
        var result = new Rgb[size * size];
        int s = supersampling;
        double inv = 1.0 / (s * s);
        var candidates = new List<ObjectPlacement>(objects.Count);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                var bg = background((x + 0.5) / size, (y + 0.5) / size);
                candidates.Clear();
                foreach (var o in objects)
                    if (o.MaxX >= x && o.MinX <= x + 1 && o.MaxY >= y && o.MinY <= y + 1) candidates.Add(o);
                if (candidates.Count == 0) { result[y * size + x] = bg; continue; }
                Rgb color = default;
                for (int j = 0; j < s; j++)
                    for (int i = 0; i < s; i++)
                    {
                        double px = x + (i + 0.5) / s, py = y + (j + 0.5) / s;
                        Rgb sample = bg;
                        for (int k = candidates.Count - 1; k >= 0; k--)
                            if (candidates[k].Covers(px, py)) { sample = candidates[k].ColorAt(px, py); break; }
                        color += sample;
                    }
                result[y * size + x] = color * inv;
            }
        return result;
    }

    static byte Quantize(double v) => (byte)Math.Round(Math.Clamp(v, 0, 1) * 255, MidpointRounding.AwayFromZero);
}
